"""Group ``charts``: Altair figures as PNG in the UI and interactive HTML in the outputs folder."""

# --- response and toxicity charts (waterfall, adverse events) ---

# --- survival charts (Kaplan–Meier, forest) ---
