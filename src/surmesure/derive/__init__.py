"""Derived per-person metrics: RFM, customer lifetime value (BG/NBD + Gamma-Gamma),
engagement and satisfaction, computed in the store with Ibis and written to
``derived_metrics`` by :func:`surmesure.derive.run.derive`."""
