-- RA mode (src/registration_authority.rs): a profile's certificates issued by an existing SCEP CA. A request
-- the edge accepted is saved as a PENDING transaction naming the upstream it was forwarded to, with what it
-- claimed (the core's ClaimRecord, JSON: the claim and its attempt) so a refusal can give the claim back. A
-- certificate the upstream issued names it, and belongs to no CA of this service (ca_id NULL: on no CRL here).
ALTER TABLE transactions ADD COLUMN upstream TEXT;
ALTER TABLE transactions ADD COLUMN claim TEXT;
ALTER TABLE certificates ADD COLUMN upstream TEXT;
