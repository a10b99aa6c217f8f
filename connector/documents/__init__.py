"""Invoices and credit notes as PDF documents: what a document shows (:mod:`.content`), in which
language and words (:mod:`.templates`), laid out with fpdf2 (:mod:`.layout`) in fonts installed
from pip (:mod:`.fonts`), and kept by the SHA-256 of their bytes (:mod:`.store`)."""
