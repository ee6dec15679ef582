"""Exports are pure functions of an AnalysisResult, shared by the GUI and the CLI (same bytes)."""
