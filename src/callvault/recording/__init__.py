"""callvault.recording"""
