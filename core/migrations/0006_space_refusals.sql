-- Why this device was refused in a space (an admin's or the inviter's
-- reason), so `space list` tells the truth after a restart too; NULL when
-- it was not, or joined again since.
ALTER TABLE spaces ADD COLUMN refused TEXT;
