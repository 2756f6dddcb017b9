"""Sound enclosures over a box (or a polytope cut from it): pre-activations, slopes, matrices and outputs.

* :mod:`~certify.bounds.interval`: interval arithmetic and CROWN/DeepPoly back-substitution;
* :mod:`~certify.bounds.centred`: the centred (midpoint + perturbation) bound on ||M|| over slope ranges;
* :mod:`~certify.bounds.corollary4`: the product-of-norms bound of Corollary 4.
"""
