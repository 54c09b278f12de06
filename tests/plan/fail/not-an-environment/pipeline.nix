{ project = "demo"; services = { }; }
