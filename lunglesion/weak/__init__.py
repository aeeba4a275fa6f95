"""dRAM: lesion segmentation learned from per-region lesion percentages (weak supervision).

Modules: ``ctss`` (score tables), ``regions`` (lung regions per case), ``weaklabels``
(score / interval CSVs), ``losses``, ``attention``, ``crf``, ``cam`` (baseline),
``pipeline`` (the resumable training chain) and ``simulate`` (3D simulated lesions).
"""
