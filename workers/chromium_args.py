"""Chromium switches the worker adds to Playwright's, to cut the memory each run's context costs.

Chromium 156 (full, new headless) gives every browser window the omnibox popup as a preloaded WebUI:
a `--top-chrome-webui` renderer of ~50 MiB PSS per context, never shown in automation. Switching its
features off leaves one page renderer per context. Chromium keeps only the last `--disable-features`
on its command line, so ours repeats Playwright's own list (tests/integration/browser checks it still
holds every feature Playwright disables); WAYFARER_CHROMIUM_ARGS come after and win.
"""

from __future__ import annotations

PLAYWRIGHT_DISABLED_FEATURES = (  # playwright-core chromiumSwitches.ts, Playwright 1.65
    "AvoidUnnecessaryBeforeUnloadCheckSync", "DestroyProfileOnBrowserClose", "HttpsUpgrades",
    "HttpsFirstBalancedModeAutoEnable", "LensOverlay", "MediaRouter", "PaintHolding",
    "ThirdPartyStoragePartitioning", "AvoidCorsURLLoaderRestartOnRedirect", "TcpPortRandomizationWin",
    "OptimizationHints", "NetworkTimeServiceQuerying", "AimEnabled", "PreconnectToSearch",
    "msForceBrowserSignIn", "msEdgeUpdateLaunchServicesPreferredVersion",
)
OMNIBOX_WEBUI_FEATURES = ("WebUIOmniboxPopup", "WebUIOmniboxAimPopup")


def launch_args(configured: list[str]) -> list[str]:
    """Our switches, then the configured ones (a configured --disable-features replaces ours)."""
    disabled = ",".join((*PLAYWRIGHT_DISABLED_FEATURES, *OMNIBOX_WEBUI_FEATURES))
    return [f"--disable-features={disabled}", *configured]
