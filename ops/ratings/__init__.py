"""好差评: ratings of every service event, rectification (整改) of poor ones, the export to the provincial system."""
