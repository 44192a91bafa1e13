"""The course's authoring tools: what builds and checks the course, never what a learner calls.

`nbrun` runs notebooks headless and stamps them (`ftlearn run`), `tidy` makes saved outputs render without a
kernel (`ftlearn tidy`), `exercises` generates exercises/ from solutions/ (`ftlearn exercises`), `headers`
rewrites notebook headers, README's course map and the generated parts of docs/instructors.md (`ftlearn
headers`), `guide` computes those parts, and `figures` finds the figures quoted in prose among printed outputs
(tests/test_prose_matches_outputs.py), and `site` builds the course as a static website (`ftlearn site`).
`ftlearn progress` borrows `nbrun`'s kernel runner at run time.

Nothing a lesson imports imports this package (tests/test_architecture.py checks it): the CLI's authoring
commands import it inside their functions.
"""
