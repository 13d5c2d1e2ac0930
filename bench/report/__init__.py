"""Presentation: terminal tables and progress (rich), CSV/Markdown (pandas), HTML (plotly)."""
