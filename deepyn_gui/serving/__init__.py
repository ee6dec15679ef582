"""Serving U-YNet over the KServe v2 / Open Inference Protocol, and what client and server share.

``contract`` is the interface both sides check (tensor names, types, shapes; the deepyn response
parameters); ``batcher`` merges concurrent requests into one backend call; ``server`` puts a backend
behind kserve's ModelServer. Only ``server`` imports kserve, and only when ``deepyn serve`` runs.
"""
