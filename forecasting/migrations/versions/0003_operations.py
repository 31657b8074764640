"""Operations: a job's interruption count, and the digest of a version's ONNX export.

* ``jobs.attempts`` -- how many times the job was interrupted while running (a server
  crash, a restart, a shutdown past its grace period); a job is re-queued once
  (:meth:`forecasting.jobs.JobRunner.recover`), then failed.
* ``model_versions.export_sha256`` / ``export_files`` -- the digest of the version's ONNX
  export (combined, and each file's sha256), recorded when the export is made and checked
  on every load (:func:`forecasting.loading.load_serving`): an export whose files and
  manifest were rewritten together no longer matches the database.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("export_sha256", sa.String(64), nullable=True))
        batch.add_column(sa.Column("export_files", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("export_files")
        batch.drop_column("export_sha256")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("attempts")
