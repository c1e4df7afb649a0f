# A static HTTPS file server for tests (a WKD web server): serves ROOT on 127.0.0.1, a free
# port, with CERT/KEY; writes the port to READY once listening and logs each request path.
import http.server, os, ssl, sys
root, cert, key, ready, log = sys.argv[1:6]
os.chdir(root)
class Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        with open(log, 'a') as f:
            f.write(self.path + '\n')
httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
with open(ready + '.tmp', 'w') as f:
    f.write(str(httpd.server_address[1]))
os.rename(ready + '.tmp', ready)
httpd.serve_forever()
