"""Interactive views for notebooks (JupyterLab, VS Code, Colab, Voilà), each exportable to one offline HTML file.

Every view is an :class:`~interp.widgets._base.View` (an anywidget): its state
lives in synced traits, it renders from results and stores, and
``view.export_html("x.html")`` writes a standalone page that opens from
``file://`` with no network. Views that need fresh model output (the steering
playground) call a function you pass in.
"""

from __future__ import annotations

from interp._lazy import lazy_exports

__all__ = [
    "View",
    "FeatureDashboard",
    "TokenHeatmap",
    "ImageHeatmap",
    "AttentionViewer",
    "CircuitExplorer",
    "SteeringPlayground",
    "TrainingDashboard",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "View": "interp.widgets._base",
        "FeatureDashboard": "interp.widgets.feature",
        "TokenHeatmap": "interp.widgets.heatmap",
        "ImageHeatmap": "interp.widgets.heatmap",
        "AttentionViewer": "interp.widgets.attention",
        "CircuitExplorer": "interp.widgets.circuit",
        "SteeringPlayground": "interp.widgets.steering",
        "TrainingDashboard": "interp.widgets.training",
        "jupyter_path": "interp.widgets.voila",
        "VOILA_TEMPLATE": "interp.widgets.voila",
    },
)
