#!/usr/bin/env python3
"""Generates the exact patterns in daemon/src/patterns.rs and checks each
against a reference parser on random samples. Run it and paste its output
into patterns.rs when a rule changes (the duration bound, the peer id form).
"""
import random
import re

# --- durations: N[s|m|h|d|w], 0 < seconds <= 100 years ---
def rng(lo, hi):
    """regex alternatives for integers lo..hi (no leading zeros), same digit count handled recursively"""
    out=[]
    # split by digit length
    for L in range(len(str(lo)), len(str(hi))+1):
        a=max(lo,10**(L-1) if L>1 else 0); b=min(hi,10**L-1)
        if a<=b: out+=same_len(str(a).zfill(L),str(b).zfill(L))
    return out
def same_len(a,b):
    if a==b: return [a]
    if len(a)==1: return [f"[{a}-{b}]" if a!=b else a]
    # common prefix
    if a[0]==b[0]:
        return [a[0]+x for x in same_len(a[1:],b[1:])]
    res=[]
    n=len(a)-1
    # a[0] with a[1:]..9s
    if a[1:]=='0'*n: lo_first=a[0]
    else:
        res+=[a[0]+x for x in same_len(a[1:],'9'*n)]
        lo_first=str(int(a[0])+1)
    if b[1:]=='9'*n: hi_first=b[0]
    else:
        hi_first=str(int(b[0])-1)
    if int(lo_first)<=int(hi_first):
        d=lo_first if lo_first==hi_first else f"[{lo_first}-{hi_first}]"
        res.append(d+("[0-9]" if n==1 else f"[0-9]{{{n}}}"))
    if b[1:]!='9'*n:
        res+=[b[0]+x for x in same_len('0'*n,b[1:])]
    return res
MAX=100*365*86400
units={'s':1,'m':60,'h':3600,'d':86400,'w':7*86400}
parts=[]
for u,sc in units.items():
    alts=rng(1,MAX//sc)
    suffix = '[s]?' if u=='s' else u
    parts.append(f"0*(?:{'|'.join(alts)}){suffix}")
pat="^(?:"+"|".join(parts)+")$"
DURATION = pat
def parse(t):
    m=re.match(r'^([0-9]*)(.*)$',t); d,u=m.groups()
    if not d: return None
    n=int(d); sc={'':1,'s':1,'m':60,'h':3600,'d':86400,'w':604800}.get(u)
    if sc is None: return None
    s=n*sc
    return s if 0<s<=MAX else None
r=re.compile(pat)
random.seed(1)
for i in range(300000):
    n=random.choice([random.randint(0,10**random.randint(1,12)), MAX//random.choice([1,60,3600,86400,604800])+random.randint(-2,2)])
    t=("0"*random.randint(0,2))+str(n)+random.choice(['','s','m','h','d','w','x'])
    assert (r.match(t) is not None)==(parse(t) is not None),(t)


# --- node ids: base58 of 00 24 08 01 12 20 + 32 bytes ---
A="123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
def enc(n, width):
    s=""
    while n: n,r=divmod(n,58); s=A[r]+s
    return s.rjust(width, A[0])
def cls(lo,hi):  # digit values lo..hi inclusive
    chars=A[lo:hi+1]
    if len(chars)==1: return chars
    # compress into ascii ranges
    out=""; i=0
    while i<len(chars):
        j=i
        while j+1<len(chars) and ord(chars[j+1])==ord(chars[j])+1: j+=1
        out+= chars[i] if i==j else (chars[i]+"-"+chars[j] if j>i+1 else chars[i]+chars[j])
        i=j+1
    return "["+out+"]"
ANY=cls(0,57)
def rng(a,b):  # same length strings
    if a==b: return [a]
    if len(a)==1: return [cls(A.index(a),A.index(b))]
    if a[0]==b[0]: return [a[0]+x for x in rng(a[1:],b[1:])]
    n=len(a)-1; res=[]
    lo=A.index(a[0]); hi=A.index(b[0])
    if a[1:]==A[0]*n: lo_full=lo
    else: res+=[a[0]+x for x in rng(a[1:],A[-1]*n)]; lo_full=lo+1
    hi_full = hi if b[1:]==A[-1]*n else hi-1
    if lo_full<=hi_full: res.append(cls(lo_full,hi_full)+(ANY if n==1 else ANY+"{%d}"%n))
    if b[1:]!=A[-1]*n: res+=[b[0]+x for x in rng(A[0]*n,b[1:])]
    return res
P=bytes([0x00,0x24,0x08,0x01,0x12,0x20])
lo=int.from_bytes(P+bytes(32),'big'); hi=int.from_bytes(P+b'\xff'*32,'big')
# leading zero byte -> leading '1'
lo_s="1"+enc(lo,0); hi_s="1"+enc(hi,0)
assert len(lo_s)==len(hi_s), (lo_s,hi_s)
pat = "^1(?:"+"|".join(rng(lo_s[1:],hi_s[1:]))+")$"
NODE_ID = pat
r=re.compile(pat)
def dec(s):
    n=0
    for c in s: n=n*58+A.index(c)
    z=len(s)-len(s.lstrip('1'))
    b=n.to_bytes((n.bit_length()+7)//8,'big') if n else b''
    return b'\x00'*z+b
def valid(s):
    try: b=dec(s)
    except ValueError: return False
    return len(b)==38 and b[:6]==P
random.seed(2)
for i in range(200000):
    k=random.randint(0,2)
    if k==0: s="1"+enc(random.randint(lo-2**250,hi+2**250),0)
    elif k==1: s="12D3KooW"+"".join(random.choice(A) for _ in range(44))
    else: s=enc(random.randint(0,2**310),0)
    assert (r.match(s) is not None)==valid(s), s

# Both patterns hold no backslash or quote, so they paste as Rust literals.
print('pub const NODE_ID: &str = "%s";' % NODE_ID)
print('pub const DURATION: &str = "%s";' % DURATION)
