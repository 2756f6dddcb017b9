"""The engines that bracket a supremum: sampling (lower bounds) and searches with sound upper bounds.

* :mod:`~certify.engines.sampling`: batched falsification (GPU or CPU), every value replayed in float64;
* :mod:`~certify.engines.regions` / :mod:`~certify.engines.region_search`: activation regions of piecewise-linear
  nets and the branch and bound over them;
* :mod:`~certify.engines.box_search`: branch and bound over sub-boxes for any activation;
* :mod:`~certify.engines.violation_search`: the same for the invariance violation;
* :mod:`~certify.engines.milp_encoding`: MILP encodings of piecewise-linear nets and the analyses built on them;
* :mod:`~certify.engines.lipsdp`: the LipSDP-Neuron bound, re-checked in float64;
* :mod:`~certify.engines.newton` / :mod:`~certify.engines.equilibria`: equilibria (Newton and Krawczyk, regions).
"""
