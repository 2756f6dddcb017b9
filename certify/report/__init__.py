"""The report of one run: the :class:`~certify.report.report.Report` record, its renderers and pictures."""

from .report import Report

__all__ = ["Report"]
