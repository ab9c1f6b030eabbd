export declare class Upbroker {}
