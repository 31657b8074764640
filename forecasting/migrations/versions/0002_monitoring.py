"""Monitoring: retraining policies, retraining decisions, and the scheduler's job table.

Observations and served forecasts are append-only Parquet under the artifact store
(:mod:`forecasting.store.monitoring`); the database keeps what is small and transactional:
each model's retraining policy (with its counter of new observations and its run lock),
every champion/challenger decision, and APScheduler's job store (``scheduler_jobs``, the
table ``apscheduler.jobstores.sqlalchemy.SQLAlchemyJobStore`` defines).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "retrain_policies",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("model_id", sa.Integer(), sa.ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
        sa.Column("policy", sa.JSON(), nullable=False),
        sa.Column("new_observations", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("running_since", _TS, nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
        sa.UniqueConstraint("model_id", name="uq_retrain_policies_model"),
    )
    op.create_table(
        "retrain_decisions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("model_id", sa.Integer(), sa.ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("champion_version", sa.Integer(), nullable=True),
        sa.Column("challenger_version", sa.Integer(), nullable=True),
        sa.Column("metric", sa.String(16), nullable=False),
        sa.Column("champion_score", sa.Float(), nullable=True),
        sa.Column("challenger_score", sa.Float(), nullable=True),
        sa.Column("margin", sa.Float(), nullable=False),
        sa.Column("promoted", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
    )
    op.create_index("ix_retrain_decisions_model_created", "retrain_decisions", ["model_id", "created_at"])
    op.create_table(
        "scheduler_jobs",
        sa.Column("id", sa.Unicode(191), primary_key=True),
        sa.Column("next_run_time", sa.Float(25), nullable=True),
        sa.Column("job_state", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_scheduler_jobs_next_run_time", "scheduler_jobs", ["next_run_time"])


def downgrade() -> None:
    op.drop_index("ix_scheduler_jobs_next_run_time", table_name="scheduler_jobs")
    op.drop_table("scheduler_jobs")
    op.drop_index("ix_retrain_decisions_model_created", table_name="retrain_decisions")
    op.drop_table("retrain_decisions")
    op.drop_table("retrain_policies")
