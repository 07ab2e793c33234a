"""Member search folds accents and apostrophes: "nganga" finds Ng'ang'a, "wanjiku" finds Wanjikũ.

`fold_name(text)` is the one folding, used on both sides of the search (the stored names and what
was typed; portal/members/members.py): lower case, Latin letters with accents to their plain
letter, apostrophes and combining accents (names typed in decomposed form) dropped. It is plain
SQL (translate), not the unaccent extension, because the embedded PostgreSQL ships without
contrib.

The folded names are stored, as generated columns the database keeps in step with the names
(the Piccolo table does not declare them: nothing but the database writes them). Folding is not
cheap (translate walks its 300-character list for every letter): folding 20,000 names per
keystroke took 150 ms, and a prepared statement's generic plan, which folds the typed text once
per row, seconds. Stored, a search reads plain text: about 15 ms at 20,000 members, whichever
plan PostgreSQL picks. No index: a prefix index needs the pattern when the plan is made, and the
search is a prepared statement (the full-name and phone matches already made it a scan).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from tables.raw_sql import runner

ID = "2026-12-07T05:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "fold_name() and the members' folded names"

ACCENTED = ("ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖØÙÚÛÜÝàáâãäåçèéêëìíîïðñòóôõöøùúûüýÿĀāĂăĄąĆćĈĉĊċČčĎďĐđĒēĔĕĖėĘęĚěĜĝĞğĠġĢģĤĥ"
            "ĦħĨĩĪīĬĭĮįİıĴĵĶķĹĺĻļĽľĿŀŁłŃńŅņŇňŌōŎŏŐőŔŕŖŗŘřŚśŜŝŞşŠšŢţŤťŨũŪūŬŭŮůŰűŲųŴŵŶŷŸŹźŻżŽž")
PLAIN = ("aaaaaaceeeeiiiidnoooooouuuuyaaaaaaceeeeiiiidnoooooouuuuyyaaaaaaccccccccddddeeeeeeeeeegggggggghh"
         "hhiiiiiiiiiijjkkllllllllllnnnnnnoooooorrrrrrssssssssttttuuuuuuuuuuuuwwyyyzzzzzz")
# translate() drops the characters of its second argument that have none in the third.
DROPPED = "'’‘ʼ`´" + "".join(chr(c) for c in range(0x300, 0x370))  # apostrophes, combining accents
assert len(ACCENTED) == len(PLAIN)

FROM = (ACCENTED + DROPPED).replace("'", "''")

FORWARDS = [
    f"""CREATE OR REPLACE FUNCTION fold_name(text) RETURNS text
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
        AS $$ SELECT translate(lower($1), '{FROM}', '{PLAIN}') $$""",
    "ALTER TABLE member ADD COLUMN first_name_folded text GENERATED ALWAYS AS (fold_name(first_name)) STORED",
    "ALTER TABLE member ADD COLUMN last_name_folded text GENERATED ALWAYS AS (fold_name(last_name)) STORED",
]

BACKWARDS = [
    "ALTER TABLE member DROP COLUMN IF EXISTS first_name_folded",
    "ALTER TABLE member DROP COLUMN IF EXISTS last_name_folded",
    "DROP FUNCTION IF EXISTS fold_name(text)",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_raw(runner(FORWARDS))
    manager.add_raw_backwards(runner(BACKWARDS))
    return manager
