"""Data: one `Split` representation, sources that read or generate corpora, and regimes."""
