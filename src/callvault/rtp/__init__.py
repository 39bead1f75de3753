"""callvault.rtp"""
