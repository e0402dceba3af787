-- The queue ranks Redis may give: below this, kept here before Redis gives them out (a
-- block at a time). The places themselves reach queue_places about a second after they
-- are given, so without it a Redis lost in that second came back shorter and gave the
-- newest ranks again, to other people, while their first holders' tickets still named them.
ALTER TABLE queue_state ADD COLUMN rank_ceiling integer NOT NULL DEFAULT 0;
