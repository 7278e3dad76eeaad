"""Signable documents: the client's mandate PDF (delegation mandate + DGFiP accord formel).

`documents.models` holds what a mandate says, `documents.mandate_pdf.render_mandate_pdf` draws it.
"""
