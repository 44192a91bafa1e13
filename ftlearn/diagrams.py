"""Pictures drawn with matplotlib for the lessons: the data path of a transformer layer, with tensor shapes.

Introduced in notebook 06 (the transformer, by hand). Drawn, not loaded from an image file, so the labels
always name the shapes of the model the notebook loaded.
"""

from __future__ import annotations

from typing import Any

# One row per box, top to bottom: (label, shape after it, kind). "add" rows are residual additions; their
# residual arrow starts at the row named by `_RESIDUAL_FROM`.
_POST_LN = [  # BERT: LayerNorm after each residual addition
    ("input x", "(B, T, C)", "io"),
    ("Q, K, V = x W + b; split into H heads", "(B, H, T, d)", "op"),
    ("softmax(Q Kᵀ / √d + mask) V", "(B, H, T, d)", "op"),
    ("merge heads; output projection", "(B, T, C)", "op"),
    ("add x, then LayerNorm", "(B, T, C)", "add"),
    ("Linear C → F, GELU", "(B, T, F)", "op"),
    ("Linear F → C", "(B, T, C)", "op"),
    ("add, then LayerNorm", "(B, T, C)", "add"),
]
_PRE_LN = [  # GPT-2: LayerNorm before each sub-layer, the residual path untouched
    ("input x", "(B, T, C)", "io"),
    ("LayerNorm", "(B, T, C)", "op"),
    ("Q, K, V = x W + b; split into H heads", "(B, H, T, d)", "op"),
    ("softmax(Q Kᵀ / √d + causal mask) V", "(B, H, T, d)", "op"),
    ("merge heads; output projection", "(B, T, C)", "op"),
    ("add x", "(B, T, C)", "add"),
    ("LayerNorm", "(B, T, C)", "op"),
    ("Linear C → F, GELU (tanh)", "(B, T, F)", "op"),
    ("Linear F → C", "(B, T, C)", "op"),
    ("add", "(B, T, C)", "add"),
]
_RESIDUAL_FROM = {"bert": {4: 0, 7: 4}, "gpt2": {5: 0, 9: 5}}
_COLOURS = {"io": "#e8e8e8", "op": "#dbe9f6", "add": "#fde2c8"}


def block_diagram(sizes: dict[str, int] | None = None, ax_pair: Any = None, sizes_of: str = "this model") -> Any:
    """BERT's post-LN layer beside GPT-2's pre-LN block, each box labelled with its output shape (notebook 06).

    `sizes` (e.g. {"C": 384, "H": 12, "d": 32, "F": 1536}) adds the numbers of a real model to the legend, after
    `sizes_of`, which names that model ("this BERT": the two columns are two models, the sizes one model's).
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    if ax_pair is None:
        fig, ax_pair = plt.subplots(1, 2, figsize=(12, 6.4))
    else:
        fig = ax_pair[0].figure
    for ax, kind, rows, title in (
        (ax_pair[0], "bert", _POST_LN, "BERT encoder layer (post-LN)"),
        (ax_pair[1], "gpt2", _PRE_LN, "GPT-2 block (pre-LN)"),
    ):
        n = len(rows)
        ys = [n - 1 - i for i in range(n)]  # top to bottom
        for (label, shape, style), y in zip(rows, ys, strict=True):
            ax.add_patch(
                FancyBboxPatch(
                    (0.05, y - 0.32), 0.62, 0.64, boxstyle="round,pad=0.02", fc=_COLOURS[style], ec="#555555", lw=1
                )
            )
            ax.text(0.36, y, label, ha="center", va="center", fontsize=9)
            ax.text(0.79, y, shape, ha="left", va="center", fontsize=9, family="monospace", color="#1f4e79")
        for y_top, y_bottom in zip(ys[:-1], ys[1:], strict=True):  # the main data path, downwards
            ax.annotate("", (0.36, y_bottom + 0.34), (0.36, y_top - 0.34), arrowprops={"arrowstyle": "->", "lw": 1})
        for i, (target, source) in enumerate(_RESIDUAL_FROM[kind].items()):  # residuals skip round the right side
            y_src, y_dst, x_bar = ys[source], ys[target], 0.72 + 0.03 * i
            ax.plot([0.67, x_bar, x_bar], [y_src, y_src, y_dst], color="#c0504d", lw=1.3)
            ax.annotate(
                "", (0.67, y_dst), (x_bar, y_dst), arrowprops={"arrowstyle": "->", "color": "#c0504d", "lw": 1.3}
            )
        ax.set_xlim(0, 1.05)
        ax.set_ylim(-0.7, n - 0.3)
        ax.set_title(title)
        ax.axis("off")
    legend = (
        "B reviews, T tokens, C hidden size, H heads of d = C/H, F feed-forward size; red: residual connections; "
        "mask: 0 where attention is allowed, -inf where not"
    )
    if sizes:
        legend += f"\n{sizes_of}: " + ", ".join(f"{k} = {v}" for k, v in sizes.items())
    fig.text(0.5, 0.01, legend, ha="center", fontsize=9)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig
