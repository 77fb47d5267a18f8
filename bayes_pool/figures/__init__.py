"""Figures of the analyses (matplotlib, Agg backend, PNG), one module per design."""
