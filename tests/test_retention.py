from datetime import date

from escr.record.retention import load_retention
from escr.settings import DEFAULT_CONFIG_DIR

SCHEDULE = load_retention(DEFAULT_CONFIG_DIR / "retention.yaml")


def test_cp_and_looked_after_children_are_kept_to_their_75th_birthday():
    assert SCHEDULE.keep_until("cp", date_of_birth=date(2015, 6, 14)) == date(2090, 6, 14)
    assert SCHEDULE.keep_until("CLA", date_of_birth=date(2012, 2, 29)) == date(2087, 2, 28)


def test_open_cases_and_unknown_dates_mean_keep():
    assert SCHEDULE.keep_until("cin", date_of_birth=date(2010, 1, 1)) is None
    assert SCHEDULE.keep_until("cin", date_of_birth=None, final_contact=date(2024, 3, 1)) == date(2026, 3, 1)
    assert SCHEDULE.keep_until("s47", date_of_birth=None, final_contact=date(2024, 3, 1)) == date(2029, 3, 1)
    assert SCHEDULE.keep_until("adoption", date_of_birth=None) is None
    assert SCHEDULE.keep_until("adoption", date_of_birth=None, events={"adoption_order": date(2020, 5, 1)}) == date(2120, 5, 1)


def test_the_longest_period_wins():
    assert SCHEDULE.longest([date(2030, 1, 1), date(2090, 6, 14)]) == date(2090, 6, 14)
    assert SCHEDULE.longest([date(2030, 1, 1), None]) is None
