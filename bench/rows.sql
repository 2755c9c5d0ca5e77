-- Extra policy rows for the benchmarks, none matching the measured request:
--   psql -v permissions=N -v restrictions=M -f bench/rows.sql
-- Permissions: rows the request's role and verbs hold but whose paths it does not match (the
-- worst case for a scan). Restrictions: a third each IPs, /24 subnets and (unknown)
-- countries, all blacklist, so every looked-up scope has rows.
DELETE FROM permissions WHERE path LIKE 'api/v2/bench/%';
DELETE FROM restrictions;
INSERT INTO permissions (action, role, verb, path)
  SELECT 'ACCEPT', 'member', (ARRAY['GET', 'POST', 'PUT', 'DELETE', 'ALL'])[n % 5 + 1],
         'api/v2/bench/market/orders/' || n
  FROM generate_series(1, :permissions) n;
INSERT INTO restrictions (category, scope, value)
  SELECT 'blacklist', s.scope, CASE s.scope
      WHEN 'ip' THEN '10.' || (n / 65536) % 256 || '.' || (n / 256) % 256 || '.' || n % 256
      WHEN 'ip_subnet' THEN '172.' || (16 + (n / 256) % 16) || '.' || n % 256 || '.0/24'
      ELSE 'Z' || n END
  FROM generate_series(1, :restrictions) n,
       LATERAL (SELECT (ARRAY['ip', 'ip_subnet', 'country'])[n % 3 + 1] AS scope) s;
