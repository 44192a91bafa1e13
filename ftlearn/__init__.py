"""ftlearn: helpers for a Jupyter-first course on full-parameter fine-tuning of language models.

Import the concept you need, e.g. `from ftlearn.runtime import get_profile`; importing this
package itself loads nothing heavy (no torch, no transformers).
"""

__version__ = "0.1.0"
