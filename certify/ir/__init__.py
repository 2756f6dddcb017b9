"""The intermediate representation every importer produces and every analysis consumes.

* :mod:`~certify.ir.network`: the float64 :class:`~certify.ir.network.Network` (layers, output map, skip);
* :mod:`~certify.ir.activations`: the activation catalogue with sound value, secant and derivative ranges;
* :mod:`~certify.ir.kernels`: batched torch kernels for f(x), A*(x), b*(x) and J(x);
* :mod:`~certify.ir.box`: the box X of states and inputs;
* :mod:`~certify.ir.quantity`: which matrix field a check bounds (A* or J);
* :mod:`~certify.ir.numerics`: induced norms and the floating-point facts soundness rests on.
"""
