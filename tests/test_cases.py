import pytest

from inferperf.cases import Case
from inferperf.extras import missing_reason
from inferperf.params import skip_reason
from inferperf.settings import Budget, Settings, parse_devices, parse_tier


def test_case_id_orders_axes_for_k_selection():
    case = Case("ladder", "deit_base", "int8dyn", "cpu", "fp32", 8)
    assert case.id == "deit_base-cpu-fp32-int8dyn-bs8"
    assert case.case_id == "ladder/deit_base-cpu-fp32-int8dyn-bs8"


def test_case_record_has_case_fields_and_id_but_not_requirements():
    record = Case("batching", "clip_t16", "manual", batch=8, requires=("torch",)).record()
    assert record["case_id"] == "batching/clip_t16-cpu-fp32-manual-bs8"
    assert record["batch"] == 8 and "requires" not in record


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"device": "tpu"}, "device"),
        ({"batch": 0}, "batch"),
        ({"variant": "int8-dyn"}, "'-'"),
        ({"model": ""}, "non-empty"),
    ],
)
def test_bad_case_fields_are_rejected_by_name(kwargs, message):
    fields = {"technique": "t", "model": "m", "variant": "v", **kwargs}
    with pytest.raises(ValueError, match=message):
        Case(**fields)


def test_missing_extra_gives_actionable_skip(monkeypatch):
    monkeypatch.setattr("inferperf.params.has_extra", lambda extra: extra != "dali")
    monkeypatch.setattr("inferperf.extras.missing_modules", lambda extra: ("nvidia.dali",))
    reason = skip_reason(Case("preprocess", "none", "dali_cpu", requires=("dali",)))
    assert reason == "install the [dali] extra: pip install -e '.[dali]' (missing nvidia.dali)"


def test_extras_installed_by_another_extra_name_that_extra(monkeypatch):
    monkeypatch.setattr("inferperf.extras.missing_modules", lambda extra: ("onnxruntime",))
    assert missing_reason("onnx").startswith("install the [torch] extra")


def test_cuda_case_skips_with_reason_when_no_cuda(monkeypatch):
    monkeypatch.setattr("inferperf.params.device_unavailable_reason", lambda d: "no CUDA device" if d == "cuda" else None)
    assert skip_reason(Case("t", "m", "v", "cuda")) == "no CUDA device"
    assert skip_reason(Case("t", "m", "v", "cpu")) is None


def test_parse_devices_and_tier():
    assert parse_devices("all") == ("cpu", "cuda")
    assert parse_devices("cpu") == ("cpu",)
    assert parse_devices("cuda, cpu") == ("cuda", "cpu")
    with pytest.raises(ValueError, match="--device"):
        parse_devices("gpu")
    assert parse_tier("standard") == "standard"
    with pytest.raises(ValueError, match="--tier"):
        parse_tier("huge")


def test_budget_overrides_apply_to_the_tier_budget():
    budgets = {"quick": Budget(3, 1), "standard": Budget(10, 2)}
    assert Settings(tier="standard").budget(budgets) == Budget(10, 2)
    assert Settings(tier="quick", rounds=7).budget(budgets) == Budget(7, 1)
    assert Settings(tier="quick", warmup_rounds=0).budget(budgets) == Budget(3, 0)


def test_time_cap_trims_rounds_of_slow_steps_but_never_below_the_minimum():
    capped = Budget(10, 2, max_time_s=8.0)
    assert capped.rounds_for(None) == 10
    assert capped.rounds_for(0.5) == 10  # 16 would fit: the configured rounds stay
    assert capped.rounds_for(2.0) == 4
    assert capped.rounds_for(60.0) == 3  # min_rounds
    assert Budget(2, 1, max_time_s=1.0).rounds_for(10.0) == 2  # never more than configured
    # --rounds is an explicit request: it lifts the cap
    explicit = Settings(tier="quick", rounds=7).budget({"quick": capped, "standard": capped})
    assert explicit == Budget(7, 2) and explicit.rounds_for(60.0) == 7
    with pytest.raises(ValueError):
        Budget(0)


def test_weights_dir_is_used_per_model_key(tmp_path):
    (tmp_path / "clip_b16").mkdir()
    settings = Settings(weights_dir=tmp_path)
    assert settings.weights_for("clip_b16") == tmp_path / "clip_b16"
    assert settings.weights_for("deit_base") is None
