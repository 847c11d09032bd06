-- User names are compared in their canonical (PRECIS UsernameCaseMapped,
-- ASCII) form, which is lower case: lower-case the stored names that can be
-- without colliding (per group of names equal but for case, only the oldest
-- user, and only when the lower-case name is free).

-- +goose Up
UPDATE users SET name = lower(name)
WHERE name <> lower(name)
  AND id = (SELECT min(u.id) FROM users u WHERE lower(u.name) = lower(users.name))
  AND NOT EXISTS (SELECT 1 FROM users u WHERE u.name = lower(users.name));

