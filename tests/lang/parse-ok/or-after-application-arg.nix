# or is a keyword, and inside application it binds to select
s: f: f s.x or 0
