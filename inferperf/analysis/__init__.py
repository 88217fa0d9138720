"""Reading and comparing runs. Imports neither torch, TensorFlow nor DALI (tests check this)."""
