"""Training the default U-YNet from real faces only (self-blended images), evaluation, calibration, int8.

Everything here is Qt-free. torch is imported only by ``train`` (and lazily elsewhere), so the
evaluation and calibration helpers stay usable with ONNX Runtime alone.
"""
