#!/usr/bin/env python3
# make_token_seeds.py - hand-written seeds for tests/fuzz/corpus/token.
# Usage: make_token_seeds.py OUTDIR  (needs python3-cryptography).
# Signs with the test-only key beside this script; handles expire in 2100,
# after the fuzz target's fixed now (2023-11-14).
import base64, json, os, sys
from cryptography.hazmat.primitives import serialization
key = serialization.load_pem_private_key(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'token-test.key'), 'rb').read(), None)
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
def b64(b): return base64.urlsafe_b64encode(b).rstrip(b'=')
def enc(x):
    # bytes are taken as JSON text already; anything else is serialised
    if not isinstance(x, bytes):
        x = json.dumps(x, separators=(',', ':')).encode()
    return b64(x)
def tok(h, p):
    hs, ps = enc(h), enc(p)
    tbs = hs + b'.' + ps
    return tbs + b'.' + b64(key.sign(tbs))
H = {"alg":"EdDSA","typ":"JWT"}
def C(**kw):
    c = {"sid":"s-1","filesystem_id":"fs-01","tenant":"acme","intent":"write","exp":4102444800,"iat":1700000000,"jti":"j-1","aud":"occfs"}
    for k,v in kw.items():
        if v is None: c.pop(k, None)
        else: c[k]=v
    return c
seeds = {}
seeds['valid_write'] = tok(H, C())
seeds['valid_read'] = tok(H, C(intent="read"))
seeds['valid_preview_aud_array'] = tok(H, C(intent="preview", aud=["x","occfs"]))
seeds['valid_min_header'] = tok({"alg":"EdDSA"}, C(iat=None))
seeds['valid_nbf'] = tok(H, C(nbf=1699999990))
seeds['valid_extra'] = tok({"alg":"EdDSA","typ":"JWT","kid":"k1"}, C(extra={"a":[1,2,{"b":None}]}))
seeds['expired'] = tok(H, C(exp=1699999000))
seeds['leeway'] = tok(H, C(exp=1699999990))
seeds['aud_wrong'] = tok(H, C(aud="other"))
seeds['aud_bad_array'] = tok(H, C(aud=["occfs", 1]))
seeds['alg_none'] = b64(b'{"alg":"none"}') + b'.' + b64(json.dumps(C()).encode()) + b'.'
seeds['alg_hs256'] = tok({"alg":"HS256","typ":"JWT"}, C())
seeds['crit'] = tok({"alg":"EdDSA","crit":["x"]}, C())
seeds['dup_header'] = tok(b'{"alg":"none","alg":"EdDSA"}', C())
seeds['dup_claim'] = tok(H, b'{"sid":"a","sid":"b","filesystem_id":"fs","tenant":"t","intent":"read","exp":4102444800,"jti":"j","aud":"occfs"}')
for k in ["sid","filesystem_id","tenant","intent","exp","jti","aud"]:
    seeds['missing_'+k] = tok(H, C(**{k:None}))
seeds['exp_string'] = tok(H, C(exp="4102444800"))
seeds['exp_real'] = tok(H, C(exp=4.1e9))
seeds['exp_huge'] = tok(H, b'{"sid":"s","filesystem_id":"fs","tenant":"t","intent":"read","exp":999999999999999999999,"jti":"j","aud":"occfs"}')
seeds['intent_bad'] = tok(H, C(intent="admin"))
seeds['fsid_dotdot'] = tok(H, C(filesystem_id=".."))
seeds['fsid_slash'] = tok(H, C(filesystem_id="a/b"))
seeds['sid_ctrl'] = tok(H, C(sid="a\nb"))
seeds['sid_long'] = tok(H, C(sid="a"*200))
seeds['nul_escape'] = tok(H, b'{"sid":"a\\u0000b","filesystem_id":"fs","tenant":"t","intent":"read","exp":4102444800,"jti":"j","aud":"occfs"}')
seeds['payload_array'] = tok(H, b'[1,2,3]')
seeds['payload_trunc'] = tok(H, b'{"sid":')
seeds['payload_deep'] = tok(H, b'['*200 + b']'*200)
v = seeds['valid_write']
h, p, s = v.split(b'.')
seeds['two_segments'] = h + b'.' + p
seeds['four_segments'] = v + b'.AAAA'
seeds['empty_payload'] = h + b'..' + s
seeds['padded_sig'] = v + b'=='
seeds['std_alphabet'] = v.replace(b'-', b'+').replace(b'_', b'/')
seeds['sig_short'] = h + b'.' + p + b'.' + s[:84]
seeds['sig_trailing_bits'] = h + b'.' + p + b'.' + s[:-1] + bytes([s[-1]+1])
seeds['sig_flipped'] = h + b'.' + p + b'.' + (b'B' if s[:1]==b'A' else b'A') + s[1:]
seeds['space'] = b' ' + v
seeds['newline'] = v + b'\n'
for n,t in seeds.items():
    open(os.path.join(out, n), 'wb').write(t)
extra = {}  # added after the first fuzzing run, for paths it missed
extra['nbf_future'] = tok(H, C(nbf=1700000100))
extra['aud_empty_array'] = tok(H, C(aud=[]))
extra['oversize'] = tok(H, C(padding="x"*6200))
for n,t in extra.items():
    open(os.path.join(out, n), 'wb').write(t)
