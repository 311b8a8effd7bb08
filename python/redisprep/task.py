"""``TaskEnum``: identical to wepppy's (names, values, order, labels, emojis)."""

from __future__ import annotations

from enum import Enum

__all__ = ["TaskEnum"]


class TaskEnum(Enum):
    """Enumerate workflow tasks mirrored into Redis progress keys."""

    if_exists_rmtree = "rmtree"
    project_init = "project_init"
    set_outlet = "set_outlet"
    abstract_watershed = "abstract_watershed"
    build_channels = "build_channels"
    find_outlet = "find_outlet"
    build_subcatchments = "build_subcatchments"
    build_landuse = "build_landuse"
    build_treatments = "build_treatments"
    build_rangeland_cover = "build_rangeland_cover"
    build_soils = "build_soils"
    build_climate = "build_climate"
    fetch_rap_ts = "build_rap_ts"
    fetch_openet_ts = "build_openet_ts"
    fetch_polaris = "build_polaris"
    run_wepp_hillslopes = "run_wepp_hillslopes"
    run_wepp_watershed = "run_wepp_watershed"
    run_observed = "run_observed"
    run_debris = "run_debris"
    run_roads = "run_roads"
    run_watar = "run_watar"
    run_rhem = "run_rhem"
    fetch_dem = "fetch_dem"
    landuse_map = "landuse_map"
    init_sbs_map = "init_sbs_map"
    run_omni_scenarios = "run_omni_scenarios"
    run_omni_contrasts = "run_omni_contrasts"
    dss_export = "dss_export"
    run_features_export = "run_features_export"
    build_rusle = "build_rusle"
    set_readonly = "set_readonly"
    run_path_cost_effective = "run_path_ce"

    def __str__(self) -> str:
        return str(self.value).replace("TaskEnum.", "")

    def label(self) -> str:
        """Return a human-friendly label for the task."""
        return _LABELS.get(self.name, str(self.value))

    def emoji(self) -> str:
        """Return an emoji glyph representing the task."""
        return _EMOJIS.get(self.name, str(self.value))

    def __getstate__(self) -> str:
        return str(self.value)


_LABELS: dict[str, str] = {
    "if_exists_rmtree": "Remove existing files",
    "project_init": "Initialize Project",
    "set_outlet": "Set Outlet",
    "abstract_watershed": "Abstract Watershed",
    "build_channels": "Build Channels",
    "find_outlet": "Find Outlet",
    "build_subcatchments": "Build Subcatchments",
    "build_landuse": "Build Landuse",
    "build_treatments": "Build Treatments",
    "build_rangeland_cover": "Build Rangeland Cover",
    "build_soils": "Build Soils",
    "build_climate": "Build Climate",
    "fetch_rap_ts": "Build RAP TS",
    "fetch_openet_ts": "Build OpenET TS",
    "fetch_polaris": "Build POLARIS Layers",
    "run_wepp_hillslopes": "Run WEPP Hillslopes",
    "run_wepp_watershed": "Run WEPP Watershed",
    "run_observed": "Run Observed",
    "run_debris": "Run Debris",
    "run_roads": "Run Roads",
    "run_watar": "Run WATAR",
    "run_rhem": "Run RHEM",
    "fetch_dem": "Fetch DEM",
    "landuse_map": "Landuse Map",
    "init_sbs_map": "Initialize SBS Map",
    "run_omni_scenarios": "Run OMNI Scenarios",
    "run_omni_contrasts": "Run OMNI Contrasts",
    "dss_export": "Export DSS",
    "run_features_export": "Export Features",
    "build_rusle": "Build RUSLE",
    "set_readonly": "Set Readonly",
    "run_path_cost_effective": "Run PATH Cost-Effective",
}

_EMOJIS: dict[str, str] = {
    "if_exists_rmtree": "\U0001f5d1\ufe0f",
    "project_init": "\U0001f680",
    "set_outlet": "\U0001f4cd",
    "abstract_watershed": "\U0001f48e",
    "build_channels": "\U0001f30a",
    "find_outlet": "\U0001f4cd",
    "build_subcatchments": "\U0001f9e9",
    "build_landuse": "\U0001f332",
    "build_treatments": "\U0001f48a",
    "build_rangeland_cover": "\U0001f98e",
    "build_soils": "\U0001fab1",
    "build_climate": "\u2601\ufe0f",
    "fetch_rap_ts": "\U0001f42e",
    "fetch_openet_ts": "\U0001f6f0\ufe0f",
    "fetch_polaris": "\U0001f9f1",
    "run_wepp_hillslopes": "\U0001f4a7",
    "run_wepp_watershed": "\u26f0\ufe0f",
    "run_observed": "\U0001f4ca",
    "run_debris": "\U0001faa8",
    "run_roads": "\U0001f697",
    "run_watar": "\U0001f30b",
    "run_rhem": "\U0001f335",
    "fetch_dem": "\U0001f30d",
    "landuse_map": "\U0001f5fa\ufe0f",
    "init_sbs_map": "\U0001f525",
    "run_omni_scenarios": "\U0001fa93",
    "run_omni_contrasts": "\u2696\ufe0f",
    "dss_export": "\U0001f4e4",
    "run_features_export": "\U0001f4e6",
    "build_rusle": "\U0001f531",
    "set_readonly": "\U0001f512",
    "run_path_cost_effective": "\U0001f9ee",
}
