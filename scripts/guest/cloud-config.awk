# labforge test guest: a small cloud-config (YAML subset) reader for busybox awk.
#
# Reads a #cloud-config user-data file and prints a shell script that calls the
# lf_* functions of /etc/labforge/rc.sh, with every value single-quoted.
# Understood YAML: block maps and sequences (a sequence may sit at its key's
# indentation), plain/'single'/"double" quoted scalars, block scalars (| |- |+ > >-),
# one-level flow sequences [a, b] and flow maps {k: v}. Anchors, tags and
# multi-document files are not understood.
# Understood keys: hostname, fqdn, users, write_files, runcmd, power_state
# (see docs/TEST-GUEST.md).

function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }
function q(s) { gsub(/'/, "'\\''", s); return "'" s "'" }
function unquote(s,   c, out, i, ch) {
  s = trim(s)
  c = substr(s, 1, 1)
  if (c == "'") {
    s = substr(s, 2); sub(/'[ \t]*(#.*)?$/, "", s); gsub(/''/, "'", s); return s
  }
  if (c == "\"") {
    s = substr(s, 2); sub(/"[ \t]*(#.*)?$/, "", s)
    out = ""
    for (i = 1; i <= length(s); i++) {
      ch = substr(s, i, 1)
      if (ch == "\\" && i < length(s)) {
        i++; ch = substr(s, i, 1)
        if (ch == "n") ch = "\n"; else if (ch == "t") ch = "\t"
      }
      out = out ch
    }
    return out
  }
  sub(/[ \t]+#.*$/, "", s)
  return s
}
# Splits the inside of a one-level flow collection on commas outside quotes.
function flowsplit(s, parts,   n, i, ch, cur, inq) {
  n = 0; cur = ""; inq = ""
  for (i = 1; i <= length(s); i++) {
    ch = substr(s, i, 1)
    if (inq != "") { if (ch == inq) inq = ""; cur = cur ch; continue }
    if (ch == "'" || ch == "\"") { inq = ch; cur = cur ch; continue }
    if (ch == ",") { parts[++n] = trim(cur); cur = ""; continue }
    cur = cur ch
  }
  if (trim(cur) != "") parts[++n] = trim(cur)
  return n
}
function setval(path, v,   inner, parts, n, i, k) {
  v = trim(v)
  if (v ~ /^\[.*\]$/) {
    inner = substr(v, 2, length(v) - 2)
    n = flowsplit(inner, parts)
    for (i = 1; i <= n; i++) V[path "." (i - 1)] = unquote(parts[i])
    N[path] = n; SEQ[path] = 1
    return
  }
  if (v ~ /^\{.*\}$/) {
    inner = substr(v, 2, length(v) - 2)
    n = flowsplit(inner, parts)
    for (i = 1; i <= n; i++) {
      k = parts[i]; sub(/:.*/, "", k)
      v = parts[i]; sub(/^[^:]*:/, "", v)
      V[path "." unquote(k)] = unquote(v)
    }
    return
  }
  V[path] = unquote(v)
}
function push(ind, path, type) { sp++; CI[sp] = ind; CP[sp] = path; CT[sp] = type; CN[sp] = 0 }
function startblock(path, style, keyind) { inblock = 1; BP = path; BS = style; BK = keyind; BI = -1; BUF = ""; BBL = 0 }
function endblock(   s, lines, n, i, out) {
  inblock = 0
  s = BUF
  if (BS ~ /^>/) {
    n = split(s, lines, "\n"); out = ""
    for (i = 1; i <= n; i++) {
      if (lines[i] == "") out = out "\n"
      else if (out == "" || out ~ /\n$/) out = out lines[i]
      else out = out " " lines[i]
    }
    s = out
  }
  if (BS ~ /-$/) { sub(/\n+$/, "", s) }
  else if (BS !~ /\+$/) { sub(/\n+$/, "", s); if (s != "") s = s "\n" }
  V[BP] = s
}
function mapline(ind, text, path,   key, val) {
  key = text; sub(/:([ \t].*)?$/, "", key); key = unquote(key)
  val = text; sub(/^[^:]*:/, "", val); val = trim(val)
  path = (path == "" ? key : path "." key)
  if (val == "" || val ~ /^#/) { pending = path; pendind = ind; return }
  if (val ~ /^[|>][-+]?[ \t]*(#.*)?$/) { startblock(path, substr(val, 1, 2) ~ /[-+]$/ ? substr(val, 1, 2) : substr(val, 1, 1), ind); return }
  setval(path, val)
}
function handle(ind, text,   rest, path, item, extra) {
  if (pending != "") {
    if ((text ~ /^-([ \t]|$)/) && ind >= pendind) push(ind, pending, "seq")
    else if (ind > pendind) push(ind, pending, "map")
    pending = ""
  }
  while (sp > 0 && (ind < CI[sp] || (ind == CI[sp] && CT[sp] == "seq" && text !~ /^-([ \t]|$)/))) sp--
  if (CT[sp] == "seq") {
    if (text !~ /^-([ \t]|$)/) return
    item = CP[sp] "." CN[sp]; CN[sp]++; N[CP[sp]] = CN[sp]; SEQ[CP[sp]] = 1
    rest = substr(text, 2); extra = match(rest, /[^ \t]/); if (extra == 0) rest = ""
    else { rest = substr(rest, extra); extra = extra }
    if (rest == "" || rest ~ /^#/) { pending = item; pendind = ind; return }
    if (rest ~ /^[|>][-+]?[ \t]*(#.*)?$/) { startblock(item, substr(rest, 1, 2) ~ /[-+]$/ ? substr(rest, 1, 2) : substr(rest, 1, 1), ind); return }
    if (rest ~ /^[A-Za-z0-9_.\/-]+:([ \t]|$)/) { push(ind + extra, item, "map"); mapline(ind + extra, rest, item); return }
    setval(item, rest)
    return
  }
  if (text ~ /^[^ \t]+:([ \t]|$)/ || text ~ /^("[^"]*"|'[^']*'):([ \t]|$)/) mapline(ind, text, CP[sp])
}
BEGIN { sp = 0; CI[0] = 0; CP[0] = ""; CT[0] = "map"; pending = ""; inblock = 0 }
{
  sub(/\r$/, "")
  line = $0
  if (inblock) {
    if (line ~ /^[ \t]*$/) { BBL++; next }
    ind = match(line, /[^ ]/) - 1
    if (ind > BK) {
      if (BI < 0) BI = ind
      while (BBL > 0) { BUF = BUF "\n"; BBL-- }
      BUF = BUF substr(line, BI + 1) "\n"
      next
    }
    BBL = 0
    endblock()
  }
  if (line ~ /^[ \t]*(#.*)?$/ || line ~ /^(---|\.\.\.)[ \t]*$/) next
  ind = match(line, /[^ ]/) - 1
  handle(ind, substr(line, ind + 1))
}
function truthy(s) { s = tolower(s); return s == "true" || s == "yes" || s == "on" || s == "1" }
END {
  if (inblock) endblock()
  h = ""
  if ("fqdn" in V) h = V["fqdn"]
  if ("hostname" in V) h = V["hostname"]
  if (h != "") print "lf_hostname " q(h)
  for (i = 0; i < N["users"]; i++) {
    u = "users." i
    if (!((u ".name") in V)) continue   # "default" and unknown forms
    pw = ""
    if ((u ".hashed_passwd") in V) pw = V[u ".hashed_passwd"]
    if ((u ".passwd") in V) pw = V[u ".passwd"]
    plain = ((u ".plain_text_passwd") in V) ? V[u ".plain_text_passwd"] : ""
    lock = ((u ".lock_passwd") in V) ? (truthy(V[u ".lock_passwd"]) ? "1" : "0") : "1"
    shell = ((u ".shell") in V) ? V[u ".shell"] : "/bin/sh"
    gecos = ((u ".gecos") in V) ? V[u ".gecos"] : ""
    print "lf_user " q(V[u ".name"]) " " q(pw) " " q(plain) " " q(lock) " " q(shell) " " q(gecos)
    for (j = 0; j < N[u ".ssh_authorized_keys"]; j++)
      print "lf_ssh_key " q(V[u ".name"]) " " q(V[u ".ssh_authorized_keys." j])
  }
  for (i = 0; i < N["write_files"]; i++) {
    w = "write_files." i
    if (!((w ".path") in V)) continue
    print "lf_write_file " q(V[w ".path"]) " " q(V[w ".content"]) " " q(V[w ".encoding"]) " " q(V[w ".permissions"]) " " q(V[w ".owner"]) " " q(truthy(V[w ".append"]) ? "1" : "0")
  }
  for (i = 0; i < N["runcmd"]; i++) {
    r = "runcmd." i
    if (SEQ[r]) {
      cmd = ""
      for (j = 0; j < N[r]; j++) cmd = cmd (j ? " " : "") q(V[r "." j])
    } else cmd = V[r]
    print "lf_runcmd " q(cmd)
  }
  if ("power_state.mode" in V) print "lf_power_state " q(V["power_state.mode"])
}
