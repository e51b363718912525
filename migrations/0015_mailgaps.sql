-- 0015: what marketers still missed in mailings (issue 21): why a mailing is paused,
-- what it does when a group runs out, and the recipients sent a fallback text.

-- pause_kind: who or what paused the mailing, so that only the system's pauses end by
-- themselves: 'person' (the pause action), 'exhausted' (a group ran out of codes:
-- resumed by itself, exactly once, when its groups cover the waiting recipients again),
-- 'group_deleted' (a group it draws from was deleted), 'group' (a group it draws from
-- was paused: it waits and resumes when the group is activated). '' when not paused.
-- on_exhaustion: what a running mailing does for a recipient a group has no code for:
-- 'pause' (the mailing pauses: SPEC §5), 'skip' (the recipient is skipped: "send while
-- codes last"), 'fallback' (the recipient gets the message with the macro's fallback text).
ALTER TABLE mailings
    ADD COLUMN pause_kind    text NOT NULL DEFAULT ''
        CHECK (pause_kind IN ('', 'person', 'exhausted', 'group_deleted', 'group')),
    ADD COLUMN on_exhaustion text NOT NULL DEFAULT 'pause'
        CHECK (on_exhaustion IN ('pause', 'skip', 'fallback'));
UPDATE mailings SET pause_kind = CASE WHEN pause_reason LIKE 'paused by %' THEN 'person'
                                      WHEN pause_reason LIKE '%ran out of codes%' THEN 'exhausted'
                                      ELSE 'group_deleted' END
WHERE status = 'paused';
UPDATE mailings SET on_exhaustion = 'skip' WHERE while_codes_last;
-- A paused mailing says why; any other has no pause kind.
ALTER TABLE mailings ADD CONSTRAINT mailings_pause_kind CHECK ((status = 'paused') = (pause_kind <> ''));

-- Recipients sent with a fallback text instead of a code (status 'sent'), counted apart.
ALTER TABLE mailing_batches ADD COLUMN fallback integer NOT NULL DEFAULT 0;

-- A step's detail: why the system paused or resumed ("upload 12 added 500 codes").
-- A table of its own, keyed by the event's id: mailing_events comes with 0018, which a
-- fresh database applies after this one.
CREATE TABLE mailing_event_details (
    event_id    bigint PRIMARY KEY,
    mailing_id  bigint NOT NULL REFERENCES mailings (id) ON DELETE CASCADE,
    detail      text   NOT NULL CHECK (char_length(detail) BETWEEN 1 AND 1000)
);
CREATE INDEX mailing_event_details_mailing ON mailing_event_details (mailing_id);

-- One code per customer per group (issue 21 item 4). A group with one_per_customer gives
-- a customer who holds a live code from it that same code again — recorded as a repeat —
-- in any mailing, render call or direct issue. The primary key is the rule: the
-- statement that records a customer's initial issue from such a group inserts here too,
-- so a second live code for the customer fails on it whatever runs concurrently. The row
-- goes when the issue is released (the code back in the pool).
ALTER TABLE groups ADD COLUMN one_per_customer boolean NOT NULL DEFAULT false;
CREATE TABLE group_customer_codes (
    group_id     bigint NOT NULL,
    customer_id  text   NOT NULL,
    code_id      bigint NOT NULL,
    PRIMARY KEY (group_id, customer_id)
);
CREATE INDEX group_customer_codes_code ON group_customer_codes (code_id);
