# a span over multi-byte characters renders whole characters
{ "日本" = "🙂"; }."日本" + 1
