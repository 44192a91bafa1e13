"""The block diagram of lesson 06 draws both columns, every box and the model's sizes."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from ftlearn.diagrams import _POST_LN, _PRE_LN, block_diagram  # noqa: E402


def test_block_diagram_labels_every_box_with_its_shape():
    fig = block_diagram({"C": 384, "H": 12})
    left, right = fig.axes
    for ax, rows in ((left, _POST_LN), (right, _PRE_LN)):
        texts = [t.get_text() for t in ax.texts]
        for label, shape, _ in rows:
            assert label in texts and shape in texts
    assert "this model: C = 384, H = 12" in " ".join(t.get_text() for t in fig.texts)
    assert left.get_title().endswith("(post-LN)") and right.get_title().endswith("(pre-LN)")
