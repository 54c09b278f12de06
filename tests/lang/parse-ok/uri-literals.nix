# URI literals of several schemes
[ http://example.org/foo.tar.gz?x=y&z=1 ftp://a:b@c/d mailto:x@y.z urn:isbn:0451450523 x:x ]
