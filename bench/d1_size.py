#!/usr/bin/env python3
"""Bytes one enrollment costs in D1, with every index: the Worker's migrations applied to a fresh SQLite (what D1
runs), then N enrollments written the way the Worker writes them (a seat, its redeemed code, the certificate, the
transaction, the audit row), with the sizes measured on real ones (an RSA 2048 certificate of ~850 bytes DER, its
public key, the plan). Run: python3 bench/d1_size.py [N]"""
import glob, os, sqlite3, sys, uuid

N = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
db = sqlite3.connect(':memory:')
for migration in sorted(glob.glob(os.path.join(root, 'worker', 'migrations', '*.sql'))):
    db.executescript(open(migration).read())
db.execute("INSERT INTO profiles (id, name, body, created_at, updated_at) VALUES ('p', 'laptops', '{}', 0, 0)")
size = lambda: db.execute('SELECT SUM(pgsize) FROM dbstat').fetchone()[0]
base = size()
plan = '{"subject":"CN=device-000000","not_before":1796000000,"not_after":1827536000,"sans":[],"digital_signature":true,"key_encipherment":true,"digest":"sha256"}'
for i in range(N):
    now, seat = 1_796_000_000 + i, f'device-{i:06d}'
    serial, tid, enrollment = os.urandom(16).hex(), os.urandom(32).hex(), str(uuid.uuid4())
    db.execute('INSERT INTO seats (id, created_at) VALUES (?, ?)', (seat, now))
    db.execute("INSERT INTO enrollments (id, seat_id, profile_id, code_mac, status, expires_at, created_at, redeemed_at, transaction_id, claim) VALUES (?, ?, 'p', ?, 'REDEEMED', ?, ?, ?, ?, ?)",
               (enrollment, seat, os.urandom(32).hex(), now + 604800, now, now, tid, serial))
    db.execute("INSERT INTO certificates (serial, fingerprint, seat_id, profile_id, subject, not_before, not_after, der, transaction_id, created_at) VALUES (?, ?, ?, 'p', ?, ?, ?, ?, ?, ?)",
               (serial, os.urandom(32).hex(), seat, f'CN={seat}', now - 300, now + 31536000, os.urandom(850), tid, now))
    db.execute("INSERT INTO transactions (profile_id, transaction_id, signer_fingerprint, seat_id, message_type, key_digest, status, public_key, plan, enrollment_id, certificate_serial, client_address, created_at, updated_at) VALUES ('p', ?, ?, ?, 'PKCSReq', ?, 'ISSUED', ?, ?, ?, ?, '198.51.100.7', ?, ?)",
               (tid, os.urandom(32).hex(), seat, os.urandom(32).hex(), os.urandom(294), plan, enrollment, serial, now, now))
    db.execute("INSERT INTO audit_logs (time, profile, seat_id, transaction_id, operation, status, code, message) VALUES (?, 'laptops', ?, ?, 'PKCSReq', 'Success', 'issued', ?)",
               (now, seat, tid, f'Issued certificate {serial}'))
db.commit()
per_table = dict(db.execute('SELECT name, SUM(pgsize) FROM dbstat GROUP BY name'))
total = (size() - base) / N
table = lambda *names: sum(v for k, v in per_table.items() if any(k == n or k.startswith(n) for n in names)) / N
print(f'{N} enrollments: {total:.0f} bytes each, indexes included')
for name, prefixes in [('certificate', ['certificates', 'sqlite_autoindex_certificates']), ('transaction', ['transactions', 'sqlite_autoindex_transactions']),
                       ('seat + code', ['seats', 'sqlite_autoindex_seats', 'enrollments', 'sqlite_autoindex_enrollments']), ('audit row', ['audit_logs'])]:
    print(f'  {name}: {table(*prefixes):.0f} bytes')
