"""callvault.sdp"""
