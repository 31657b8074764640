"""Alembic environment of the model registry's schema (see :mod:`forecasting.store`).

There is no ``alembic.ini``: :func:`forecasting.store.alembic_config` builds the
configuration in code and :class:`~forecasting.store.Store` runs ``upgrade head``
when it opens a database. To write a new revision::

    python -c "from alembic import command; from forecasting.store import alembic_config; \\
        command.revision(alembic_config('sqlite:///var/forecasting.db'), 'what changed', rev_id='0002')"
"""
