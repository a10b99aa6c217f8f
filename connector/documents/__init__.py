"""Invoice and credit-note documents: their PDFs."""
