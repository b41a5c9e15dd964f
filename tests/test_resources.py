"""FPGA part catalogue: datasheet numbers, prefix matching, and agreement with real reports."""

from __future__ import annotations

import warnings

import pytest

from connas4ml_torch.hardware.resources import known_parts, part_dsp, part_family, part_resources


@pytest.mark.parametrize(
    ("part", "family", "dsp", "lut", "dsps"),
    [
        ("xcvu13p-flga2577-2-e", "virtexuplus", "DSP48E2", 1728000, 12288),
        ("XCU250-FIGD2104-2L-E", "virtexuplus", "DSP48E2", 1728000, 12288),
        ("xczu7ev-ffvc1156-2-e", "zynquplus", "DSP48E2", 230400, 1728),
        ("xc7z020clg400-1", "zynq", "DSP48E1", 53200, 220),
        ("xcku115-flvb2104-2-i", "kintexu", "DSP48E2", 663360, 5520),
        ("xcu55c", "virtexuplus", "DSP48E2", 1303680, 9024),
    ],
)
def test_known_parts(part: str, family: str, dsp: str, lut: int, dsps: int) -> None:
    r = part_resources(part)
    assert set(r) == {"LUT", "FF", "BRAM_18K", "DSP", "URAM"}
    assert r["LUT"] == lut and r["DSP"] == dsps
    assert all(isinstance(v, int) for v in r.values())
    assert part_family(part) == family
    assert part_dsp(part) == dsp


def test_unknown_part_names_it_and_lists_known() -> None:
    with pytest.raises(ValueError, match="xc9nonexistent") as exc:
        part_resources("xc9nonexistent-ff1-1")
    assert "xcvu13p" in str(exc.value)
    with pytest.raises(ValueError):
        part_resources("")
    assert "xczu9eg" in known_parts()


def test_catalogue_matches_available_resources_in_reports(reports_dir) -> None:
    from connas4ml_torch.hardware.reports import read_reports

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = read_reports(reports_dir, progress=False)
    xml = df[(df["format"] == "xml") & df["avail_LUT"].notna() & df["part"].notna()]
    checked = 0
    for part, g in xml.groupby("part"):
        cat = part_resources(part)  # every part in the corpus must be known
        for k in ("LUT", "FF", "BRAM_18K", "DSP"):
            assert set(g[f"avail_{k}"].astype(int)) == {cat[k]}, (part, k)
        checked += 1
    assert checked >= 10
