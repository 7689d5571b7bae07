#!/usr/bin/env python3
"""Random protocol garbage against a pooler (loopback only), bounded in count and time.

usage: fuzz_wire.py PORT SEED [COUNT] [SECONDS] [ADMIN_USER]
Each connection sends either raw garbage, or a valid startup packet (for testdb or the
pgbouncer console) followed by random typed messages with random and absurd lengths.
The caller checks afterwards that the pooler still serves real clients.
"""
import socket,struct,random,time,sys
PORT=int(sys.argv[1])
random.seed(int(sys.argv[2]))
COUNT=int(sys.argv[3]) if len(sys.argv)>3 else 300
SECS=float(sys.argv[4]) if len(sys.argv)>4 else 60
ADMIN=(sys.argv[5] if len(sys.argv)>5 else 'u_trust').encode()
def startup(db=b'testdb', user=b'u_trust'):
    p=b'user\0'+user+b'\0database\0'+db+b'\0\0'
    return struct.pack('!II',len(p)+8,196608)+p
n=0
t0=time.time()
while n<COUNT and time.time()-t0<SECS:
    s=socket.create_connection(('127.0.0.1',PORT)); s.settimeout(1)
    mode=random.randint(0,4)
    try:
        if mode==0: s.send(bytes(random.getrandbits(8) for _ in range(random.randint(1,200))))
        else:
            db=random.choice([b'testdb',b'pgbouncer'])
            s.send(startup(db=db, user=ADMIN if db==b'pgbouncer' else b'u_trust'))
            time.sleep(0.005)
            msgs=b''
            for _ in range(random.randint(1,5)):
                t=random.choice(b'QPBDESHCFdcfXpZ?\x00')
                body=bytes(random.getrandbits(8) for _ in range(random.randint(0,40)))
                if random.random()<0.3: body+=b'\0'
                ln=len(body)+4
                if random.random()<0.15: ln=random.choice([0,3,2**31-1,2**32-1,ln+100])
                msgs+=bytes([t])+struct.pack('!I',ln & 0xffffffff)+body
            s.send(msgs)
        try: s.recv(65536)
        except Exception: pass
    except Exception: pass
    s.close(); n+=1
print('sent',n)
