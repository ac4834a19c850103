"""Salesforce roles and stages -> plan roles and stages: the defaults, overrides, mapping files."""

from __future__ import annotations

import pytest

from salesforce_export import export_files, invoke, plan_data, sf_id, small_export
from ssm_rules.importers import salesforce as sf


@pytest.mark.parametrize("role, target", list(sf.DEFAULT_ROLES.items()))
def test_every_default_role_mapping(tmp_path, role, target):
    directory = small_export(tmp_path / "e", roles=[(1, 1, role)])
    export = sf.read_export(export_files(directory))
    assert export.problems == []
    (opportunity,) = export.accounts[0].opportunities
    assert opportunity.roles == ({target: [sf.sf_key(sf_id("003", 1))]} if target else {})


@pytest.mark.parametrize("stage, target", list(sf.DEFAULT_STAGES.items()))
def test_every_default_stage_mapping(runner, tmp_path, stage, target):
    directory = small_export(tmp_path / "e", stages=[stage])
    out = tmp_path / "plans"
    assert invoke(runner, directory, out).exit_code == 0
    assert plan_data(out / "acme-corp.yaml")["opportunities"][0]["stage"] == target


def test_picklist_values_match_whatever_their_case_and_spacing():
    mapping = sf.SalesforceMapping()
    assert mapping.role("economic  BUYER") == (True, "approver")
    assert mapping.stage("closed won") == (True, "won")
    assert mapping.stage("Discovery") == (False, None)


def test_mapping_overrides_merge_over_the_defaults():
    mapping = sf.parse_mapping_overrides({"roles": {"Champion": "sponsor", "other": "influencer"},
                                          "stages": {"Discovery": "validated", "Closed Lost": ""}})
    assert mapping.role("Champion") == (True, "sponsor")
    assert mapping.role("Other") == (True, "influencer")  # replaces the default, whatever the case
    assert mapping.role("Economic Buyer") == (True, "approver")  # defaults stay
    assert mapping.stage("Discovery") == (True, "validated")
    assert mapping.stage("Closed Lost") == (True, None)


@pytest.mark.parametrize("section, message", [
    ({"roles": {"Champion": "champion"}}, "[salesforce.roles] 'Champion' = 'champion': unknown plan role"),
    ({"roles": {"Champion": "sponsr"}}, "did you mean `sponsor`?"),
    ({"stages": {"Discovery": "validate"}}, "[salesforce.stages] 'Discovery' = 'validate': unknown plan stage; "
                                            "did you mean `validated`?"),
    ({"stage": {"Discovery": "validated"}}, "unknown key `stage` in [salesforce]: did you mean `stages`?"),
    ({"roles": ["Champion"]}, "[salesforce.roles] must be a table"),
    ({"roles": {"Champion": 1}}, "'Champion' must be text"),
])
def test_bad_mapping_overrides_name_the_key(section, message):
    with pytest.raises(sf.MappingError) as error:
        sf.parse_mapping_overrides(section)
    assert message in str(error.value)


def test_mapping_file_overrides_roles_and_stages(runner, tmp_path):
    directory = small_export(tmp_path / "e", stages=["Discovery", "Closed Lost"], roles=[(1, 1, "Champion")])
    mapping = tmp_path / "mapping.toml"
    mapping.write_text('[salesforce.roles]\nChampion = "sponsor"\n\n'
                       '[salesforce.stages]\nDiscovery = "validated"\n"Closed Lost" = ""\n')
    out = tmp_path / "plans"
    result = invoke(runner, directory, out, "--mapping", str(mapping))
    assert result.exit_code == 0, result.stderr
    (opportunity,) = plan_data(out / "acme-corp.yaml")["opportunities"]
    assert opportunity["stage"] == "validated"
    assert opportunity["buying_unit"] == {"sponsor": ["first1-last1"]}
    assert "1 opportunity(ies) in stage 'Closed Lost' skipped" in result.stderr


def test_mapping_can_live_in_pyproject(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool.ssm.salesforce.roles]\nChampion = "sponsor"\n')
    assert sf.load_mapping_file(pyproject).role("Champion") == (True, "sponsor")


def test_mapping_is_read_from_the_configuration_ssm_check_uses(runner, tmp_path, monkeypatch):
    directory = small_export(tmp_path / "e", stages=["Discovery"], roles=[(1, 1, "Champion")])
    project = tmp_path / "project"
    project.mkdir()
    (project / ".ssm.toml").write_text('[salesforce.roles]\nChampion = "sponsor"\n\n'
                                       '[salesforce.stages]\nDiscovery = "validated"\n')
    monkeypatch.chdir(project)
    out = tmp_path / "plans"
    result = invoke(runner, directory, out)
    assert result.exit_code == 0, result.stderr
    (opportunity,) = plan_data(out / "acme-corp.yaml")["opportunities"]
    assert opportunity["stage"] == "validated"
    assert opportunity["buying_unit"] == {"sponsor": ["first1-last1"]}

    (project / ".ssm.toml").write_text('[salesforce.roles]\nChampion = "hero"\n')
    bad = invoke(runner, directory, tmp_path / "other")
    assert bad.exit_code == 2 and ".ssm.toml" in bad.stderr and "hero" in bad.stderr


@pytest.mark.parametrize("content, message", [
    ('[salesforce.roles]\nChampion = "hero"\n', "unknown plan role"),
    ("[salesforce\n", "not valid TOML"),
    ('[other]\nx = 1\n', "no [salesforce] table"),
])
def test_a_bad_mapping_file_is_a_usage_error(runner, tmp_path, content, message):
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(content)
    out = tmp_path / "plans"
    result = invoke(runner, small_export(tmp_path / "e"), out, "--mapping", str(mapping))
    assert result.exit_code == 2
    assert message in result.stderr and str(mapping) in result.stderr
    assert not out.exists()

