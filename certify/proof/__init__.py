"""Proof files: evidence for every certified check that a small independent checker re-checks.

:mod:`certify.proof.producer` writes them (``certify MODEL --region BOX --proof p.json``, ``Report.to_proof``);
:mod:`certify.proof.checker` re-checks them (``certify-proof check p.json MODEL BOX``) with the standard library
and numpy only. Importing this package loads neither (the checker must start without torch).
"""
