"""Solver backends (LP, MILP, SDP) behind one small typed interface.

Only this package imports solver libraries (pulp, highspy, cvxpy, scs, clarabel). Encoders elsewhere build the
solver-neutral problems of :mod:`certify.solvers.base`; a backend maps its native status codes through one table to
:class:`certify.solvers.base.SolveStatus` and never sees a ``Network``.
"""
