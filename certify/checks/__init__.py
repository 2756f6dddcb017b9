"""The checks: each turns engine results into a :class:`~certify.certificate.CheckResult` with a verdict."""
